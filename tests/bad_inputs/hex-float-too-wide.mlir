// ERROR: hexadecimal float literal does not fit f32
"test.op"() {x = 0x1FFFFFFFF : f32} : () -> ()
