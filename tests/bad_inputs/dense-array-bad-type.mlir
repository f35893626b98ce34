// ERROR: found 'foo'
"test.op"() {x = array<foo: 1>} : () -> ()
