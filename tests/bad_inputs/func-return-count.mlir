// ERROR: 'func.return' op has 0 operands, but enclosing function (@f) returns 1
// ARGS: 
func.func @f(%x: i32) -> i32 {
  "func.return"() : () -> ()
}
