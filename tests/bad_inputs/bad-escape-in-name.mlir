// ERROR: unknown escape '\z' in string
"test.o\zp"() : () -> ()
