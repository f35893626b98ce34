// ERROR: empty operation name is invalid
""() : () -> ()
