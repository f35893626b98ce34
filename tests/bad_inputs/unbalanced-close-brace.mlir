// ERROR: found '}'
builtin.module {
}
}
