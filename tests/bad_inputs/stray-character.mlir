// ERROR: unexpected character '`'
"test.op"() : () -> () `
