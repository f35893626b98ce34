// ERROR: expected all function arguments to be named or none
// ARGS: 
func.func @f(%x: i32, f32)
