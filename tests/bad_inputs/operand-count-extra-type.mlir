// ERROR: expected 0 operand types but had 1
"test.op"() : (i32) -> ()
