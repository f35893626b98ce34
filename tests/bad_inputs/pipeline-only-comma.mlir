// ERROR: expected a pass name, found ','
// ARGS: -p ,
func.func private @f()
