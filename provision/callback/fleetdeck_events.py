# fleetdeck_events: structured run events for fleetdeck.
#
# fleetdeck writes this file into a private directory for each run and enables
# it with ANSIBLE_CALLBACK_PLUGINS=<dir> and ANSIBLE_CALLBACKS_ENABLED=
# fleetdeck_events. It writes one JSON object per line to the file descriptor
# named by FLEETDECK_EVENT_FD (an inherited pipe), using the event names AWX and
# ansible-runner use. The human output stays with the stdout callback.
#
# Without FLEETDECK_EVENT_FD (or with a descriptor that is not open) the plugin
# disables itself, so an ansible.cfg that enables it outside fleetdeck is
# harmless.
#
# Compatible with ansible-core 2.14 (Debian 12) and later.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = '''
    name: fleetdeck_events
    type: notification
    short_description: JSON lines of run events for fleetdeck
    description:
      - Writes one JSON object per event to the file descriptor in FLEETDECK_EVENT_FD.
    requirements:
      - enabled with ANSIBLE_CALLBACKS_ENABLED
'''

import datetime
import errno
import json
import os

from ansible import context
from ansible.plugins.callback import CallbackBase

# Bounds keep one noisy task (a `cat` of a large file, a huge diff) from
# producing megabyte events the console would have to hold for every host.
_MAX_TEXT = int(os.environ.get('FLEETDECK_EVENT_MAX_TEXT', '16384') or 16384)
_MAX_ITEM = 512


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _plain(value, depth=0):
    """Turns a value from a result into plain JSON types (unsafe strings,
    vault objects and sets included) so json.dumps never fails."""
    if depth > 20:
        return '...'
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    if isinstance(value, dict):
        return dict((str(k), _plain(v, depth + 1)) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in value]
    return str(value)


def _text(value, limit=_MAX_TEXT):
    """A bounded string for a result field; (text, truncated)."""
    if value is None:
        return None, False
    if isinstance(value, (list, tuple)):
        value = '\n'.join(str(v) for v in value)
    elif not isinstance(value, str):
        try:
            value = json.dumps(_plain(value), sort_keys=True)
        except Exception:
            value = str(value)
    value = str(value)
    if len(value) > limit:
        return value[:limit], True
    return value, False


def _rescued(task):
    """Whether Ansible counts a failure of task as rescued rather than
    failed: the task is inside the block section (not rescue or always) of
    a block that has a rescue section, at any depth. This is the test of
    PlayIterator.is_any_block_rescuing, made on the task's parents because
    a callback does not see the iterator."""
    child = task
    parent = getattr(task, '_parent', None)
    depth = 0
    while parent is not None and depth < 64:
        body = getattr(parent, 'block', None)
        if isinstance(body, list) and getattr(parent, 'rescue', None):
            uuid = getattr(child, '_uuid', None)
            if uuid is not None and any(getattr(t, '_uuid', None) == uuid for t in body):
                return True
        child, parent = parent, getattr(parent, '_parent', None)
        depth += 1
    return False


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'fleetdeck_events'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._fd = None
        self._seq = 0
        self._play = None
        self._task = None
        raw = os.environ.get('FLEETDECK_EVENT_FD', '')
        try:
            fd = int(raw)
            os.fstat(fd)
        except (ValueError, OSError):
            self.disabled = True
            return
        # Module processes started by a local connection must not inherit
        # the pipe: a straggler holding it would keep fleetdeck's reader open.
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
        self._fd = fd

    # -- writing -----------------------------------------------------------

    def _emit(self, event, **data):
        if self._fd is None:
            return
        self._seq += 1
        data['event'] = event
        data['seq'] = self._seq
        data['time'] = _now()
        data['pid'] = os.getpid()
        line = (json.dumps(_plain(data), sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8', 'replace')
        try:
            while line:
                n = os.write(self._fd, line)
                line = line[n:]
        except OSError as e:
            # fleetdeck went away (EPIPE) or closed the pipe: stop writing,
            # let the run continue as Ansible would without this plugin.
            if e.errno in (errno.EPIPE, errno.EBADF):
                self._fd = None
            else:
                raise

    def _task_fields(self, task):
        if task is None:
            return {}
        return {
            'task': task.get_name().strip(),
            'task_uuid': task._uuid,
            'task_action': task.action,
        }

    def _result_event(self, event, result, **extra):
        res = result._result or {}
        data = self._task_fields(result._task)
        data['host'] = result._host.get_name()
        data['play'] = self._play
        data['changed'] = bool(res.get('changed', False))
        out = {}
        truncated = False
        for key in ('msg', 'stdout', 'stderr'):
            if key in res:
                out[key], t = _text(res.get(key))
                truncated = truncated or t
        if 'rc' in res:
            try:
                out['rc'] = int(res['rc'])
            except (TypeError, ValueError):
                pass
        if 'diff' in res and res['diff']:
            try:
                diff = self._get_diff(res['diff'])
            except Exception:
                diff = res['diff']
            if diff:
                out['diff'], t = _text(diff)
                truncated = truncated or t
        if 'censored' in res:
            out['msg'], _ = _text(res['censored'])
        if 'skip_reason' in res:
            out['skip_reason'], _ = _text(res['skip_reason'])
        if 'results' in res and isinstance(res['results'], list):
            # The summary result of a loop: per-item events came before it.
            out['items'] = len(res['results'])
        if truncated:
            out['truncated'] = True
        if out:
            data['res'] = out
        if 'item' in res or '_ansible_item_label' in res:
            label, _ = _text(self._get_item_label(res), _MAX_ITEM)
            data['item'] = label
        data.update(extra)
        self._emit(event, **data)

    # -- playbook and play -------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        args = context.CLIARGS
        self._emit('playbook_on_start',
                   playbook=getattr(playbook, '_file_name', None),
                   check=bool(args.get('check', False)),
                   diff=bool(args.get('diff', False)))

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name().strip()
        hosts = play.hosts
        if isinstance(hosts, (list, tuple)):
            hosts = ','.join(str(h) for h in hosts)
        self._emit('playbook_on_play_start', play=self._play, play_uuid=play._uuid,
                   pattern=str(hosts))

    def v2_playbook_on_task_start(self, task, is_conditional):
        data = self._task_fields(task)
        data['play'] = self._play
        self._emit('playbook_on_task_start', **data)

    def v2_playbook_on_handler_task_start(self, task):
        data = self._task_fields(task)
        data['play'] = self._play
        data['handler'] = True
        self._emit('playbook_on_handler_task_start', **data)

    def v2_playbook_on_no_hosts_matched(self):
        self._emit('playbook_on_no_hosts_matched', play=self._play)

    def v2_playbook_on_no_hosts_remaining(self):
        self._emit('playbook_on_no_hosts_remaining', play=self._play)

    def v2_playbook_on_stats(self, stats):
        recap = {}
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            recap[host] = {
                'ok': s.get('ok', 0),
                'changed': s.get('changed', 0),
                'unreachable': s.get('unreachable', 0),
                'failures': s.get('failures', 0),
                'skipped': s.get('skipped', 0),
                'rescued': s.get('rescued', 0),
                'ignored': s.get('ignored', 0),
            }
        self._emit('playbook_on_stats', stats=recap)

    # -- per host ----------------------------------------------------------

    def v2_runner_on_start(self, host, task):
        data = self._task_fields(task)
        data['host'] = host.get_name()
        data['play'] = self._play
        self._emit('runner_on_start', **data)

    def v2_runner_on_ok(self, result):
        self._result_event('runner_on_ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        extra = {'ignore_errors': bool(ignore_errors)}
        if not ignore_errors:
            try:
                extra['rescued'] = _rescued(result._task)
            except Exception:
                pass
        self._result_event('runner_on_failed', result, **extra)

    def v2_runner_on_skipped(self, result):
        self._result_event('runner_on_skipped', result)

    def v2_runner_on_unreachable(self, result):
        # With ignore_unreachable Ansible counts the result ok and ignored.
        ignored = bool(getattr(result._task, 'ignore_unreachable', False))
        self._result_event('runner_on_unreachable', result, ignore_errors=ignored)

    def v2_runner_item_on_ok(self, result):
        self._result_event('runner_item_on_ok', result)

    def v2_runner_item_on_failed(self, result):
        self._result_event('runner_item_on_failed', result)

    def v2_runner_item_on_skipped(self, result):
        self._result_event('runner_item_on_skipped', result)

    def v2_runner_retry(self, result):
        res = result._result or {}
        self._result_event('runner_retry', result,
                           attempts=res.get('attempts'), retries=res.get('retries'))
