// RUN: xir-opt --split-input-file --verify-diagnostics %s

// Errors found by the verifier after a successful read.

func.func @wrong_return_type(%x: i32) -> f32 {
  // expected-error @+1 {{'func.return' op type of return operand 0 ('i32') doesn't match function result type ('f32') in function @wrong_return_type}}
  "func.return"(%x) : (i32) -> ()
}

// -----

func.func @wrong_return_count(%x: i32) -> (i32, i32) {
  // expected-error @+1 {{'func.return' op has 1 operands, but enclosing function (@wrong_return_count) returns 2}}
  "func.return"(%x) : (i32) -> ()
}

// -----

// expected-error @+1 {{'func.func' op empty block: expect at least a terminator}}
func.func @no_terminator() {
^bb0:
}

// -----

func.func @not_a_terminator(%x: i32) {
  // expected-error @+1 {{block in 'func.func' must end with a terminator, not 'func.call'}}
  %y = "func.call"(%x) <{callee = @not_a_terminator}> : (i32) -> i32
}

// -----

// expected-error @+1 {{'func.return' op expects parent op 'func.func'}}
"func.return"() : () -> ()

// -----

// expected-error @+1 {{'func.call' op requires property 'callee'}}
"func.call"() : () -> ()

// -----

// expected-error @+1 {{'func.func' op entry block arguments (f32) do not match the function signature (i32)}}
"func.func"() <{sym_name = "mismatch", function_type = (i32) -> ()}> ({
^bb0(%a: f32):
  "func.return"() : () -> ()
}) : () -> ()

// -----

func.func @dominance() {
  // expected-error @+1 {{operand #0 does not dominate this use}}
  "func.call"(%later) <{callee = @dominance}> : (i32) -> ()
  %later = "func.call"() <{callee = @dominance}> : () -> i32
  "func.return"() : () -> ()
}

// -----

func.func @calls_nothing(%x: i32) {
  // expected-error @+1 {{'func.call' op '@missing' does not reference a valid function}}
  "func.call"(%x) <{callee = @missing}> : (i32) -> ()
  "func.return"() : () -> ()
}

// -----

func.func private @takes_f32(f32) -> f32

func.func @calls_with_an_i32(%x: i32) {
  // expected-error @+1 {{'func.call' op operand types (i32) do not match the inputs of @takes_f32 (f32)}}
  %y = "func.call"(%x) <{callee = @takes_f32}> : (i32) -> f32
  "func.return"() : () -> ()
}

// -----

func.func private @gives_f32(i32) -> f32

func.func @expects_an_i32(%x: i32) {
  // expected-error @+1 {{'func.call' op result types (i32) do not match the results of @gives_f32 (f32)}}
  %y = "func.call"(%x) <{callee = @gives_f32}> : (i32) -> i32
  "func.return"() : () -> ()
}
