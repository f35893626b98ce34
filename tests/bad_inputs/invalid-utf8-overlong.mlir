// ERROR: input is not valid UTF-8
"test.op"() {s = "À¯"} : () -> ()
