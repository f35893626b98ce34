// ERROR: unexpected decimal integer literal for a floating point value
"test.op"() {x = 1 : f32} : () -> ()
