// ERROR: expected a pass name
// ARGS: -p cse,,dce
func.func private @f()
