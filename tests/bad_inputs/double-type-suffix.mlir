// ERROR: found ':'
"test.op"() {x = "s" : i32 : i32} : () -> ()
