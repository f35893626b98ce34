// ERROR: expected '(' or function type, found 'i32'
"test.op"() : i32
