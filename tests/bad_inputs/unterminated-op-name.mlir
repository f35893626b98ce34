// ERROR: unterminated string literal
"test.op() : () -> ()
