package roles

// SetBeforeWrite makes f run between each change's read and its
// transaction, so that tests can make changers race on the check-and-set.
func SetBeforeWrite(s *Store, f func()) { s.beforeWrite = f }
