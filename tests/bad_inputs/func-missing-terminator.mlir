// ERROR: 'func.func' op empty block: expect at least a terminator
// ARGS: 
func.func @f() {
^bb0:
}
