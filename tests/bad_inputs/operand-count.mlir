// ERROR: expected 2 operand types but had 1
%a = "test.op"() : () -> i32
"test.use"(%a, %a) : (i32) -> ()
