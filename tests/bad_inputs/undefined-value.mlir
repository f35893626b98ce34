// ERROR: use of undeclared SSA value name '%x'
"test.use"(%x) : (i32) -> ()
