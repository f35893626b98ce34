// ERROR: expected SSA value, found ')'
%a = "test.op"() : () -> i32
"test.use"(%a,) : (i32) -> ()
