// ERROR: input is not valid UTF-8: invalid byte 0xff at byte offset 93
"test.op"() {s = "cafÿ"} : () -> ()
