// ERROR: unknown pass 'nope'
// ARGS: -p nope
func.func private @f()
