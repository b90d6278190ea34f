package provision

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
)

// histProcess reports whether pid is running and its start time in clock
// ticks since boot (field 22 of /proc/<pid>/stat), 0 if unknown.
func histProcess(pid int) (alive bool, start uint64) {
	if pid <= 0 {
		return false, 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return false, 0
	}
	if err != nil {
		return true, 0 // cannot tell: assume alive
	}
	// The command name (field 2) is in parentheses and may hold spaces or
	// parentheses itself: the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return true, 0
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state): a zombie has ended, it is only waiting
	// for its parent to reap it.
	if len(fields) > 0 && fields[0] == "Z" {
		return false, 0
	}
	if len(fields) < 20 {
		return true, 0
	}
	start, _ = strconv.ParseUint(fields[19], 10, 64)
	return true, start
}

// histBootID is the kernel's random id of this boot.
func histBootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
