// ERROR: unterminated string literal
"test.op"() {s = "no end} : () -> ()
