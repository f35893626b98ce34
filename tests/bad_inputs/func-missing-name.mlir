// ERROR: found '('
// ARGS: 
func.func (%x: i32)
