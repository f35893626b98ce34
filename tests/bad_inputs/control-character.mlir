// ERROR: unexpected character '\x07'
"test.op"() {x = } : () -> ()
