// ERROR: 'func.return' op type of return operand 0 ('i32') doesn't match function result type ('f32')
// ARGS: 
func.func @f(%x: i32) -> f32 {
  "func.return"(%x) : (i32) -> ()
}
