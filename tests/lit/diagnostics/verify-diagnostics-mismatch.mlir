// RUN: not xir-opt --split-input-file --verify-diagnostics %s 2>&1 | filecheck %s

// --verify-diagnostics itself fails, with one error per mismatch, when the diagnostics produced
// and the annotations disagree.

// An expected error that is not produced.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 1]]:4: error: expected error "never happens" was not produced
// expected-error @+1 {{never happens}}
func.func private @fine()

// -----

// A produced error that is not expected: its message and place are reported.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 1]]:18: error: unexpected error: use of undeclared SSA value name '%nope'
%x = "func.call"(%nope) <{callee = @f}> : (i32) -> i32

// -----

// Right message, wrong line: both sides are reported.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 2]]:4: error: expected error "undeclared" was not produced
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 2]]:15: error: unexpected error: use of undeclared
// expected-error @+2 {{undeclared}}
"func.return"(%y) : (i32) -> ()

// -----

// A message that does not match.
// CHECK: error: expected error "something else" was not produced
// CHECK: error: unexpected error: unknown operation 'func.nope'
// expected-error @+1 {{something else}}
"func.nope"() : () -> ()

// -----

// A malformed annotation.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 1]]:4: error: malformed diagnostic annotation
// expected-error @+1 {{no closing braces
func.func private @fine()

// -----

// The other forms: @above, @below, and a note/warning severity that is never produced.
// CHECK: error: expected warning "never" was not produced
// expected-warning {{never}}
// expected-error @below {{unregistered dialect 'test'}}
"test.op"() : () -> ()

// -----

"other.op"() : () -> ()
// expected-error @above {{unregistered dialect 'other'}}

// CHECK-NOT: error:
