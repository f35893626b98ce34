// ERROR: unknown escape '\q' in string
"test.op"() {s = "bad \q escape"} : () -> ()
