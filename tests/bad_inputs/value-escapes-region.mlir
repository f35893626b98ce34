// ERROR: use of undeclared SSA value name '%inner'
"test.region"() ({
  %inner = "test.op"() : () -> i32
}) : () -> ()
"test.use"(%inner) : (i32) -> ()
