// ERROR: use of undeclared SSA value name '%missing'
// ARGS: 
func.func @f() {
  "func.return"(%missing) : (i32) -> ()
}
