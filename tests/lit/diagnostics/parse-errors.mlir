// RUN: xir-opt --split-input-file --verify-diagnostics %s

// Errors found while reading: each chunk holds one, on the line its annotation names.

func.func @undefined() {
  // expected-error @+1 {{use of undeclared SSA value name '%nope'}}
  "func.return"(%nope) : (i32) -> ()
}

// -----

func.func @redefinition() {
  %x = "func.call"() <{callee = @redefinition}> : () -> i32
  // expected-error @+1 {{redefinition of SSA value '%x'}}
  %x = "func.call"() <{callee = @redefinition}> : () -> i32
  "func.return"() : () -> ()
}

// -----

func.func @type_mismatch(%a: i32) {
  // expected-error @+1 {{use of value '%a' expects different type than prior uses: 'f32' vs 'i32'}}
  "func.return"(%a) : (f32) -> ()
}

// -----

func.func @operand_count(%a: i32) {
  // expected-error @+1 {{expected 2 operand types but had 1}}
  "func.call"(%a, %a) <{callee = @operand_count}> : (i32) -> ()
  "func.return"() : () -> ()
}

// -----

func.func @result_count() {
  // expected-error @+1 {{operation defines 1 results but was provided 2 to bind}}
  %a, %b = "func.call"() <{callee = @result_count}> : () -> i32
  "func.return"() : () -> ()
}

// -----

func.func @unknown_op() {
  // expected-error @+1 {{unknown operation 'func.frobnicate': dialect 'func' has no such op}}
  "func.frobnicate"() : () -> ()
  "func.return"() : () -> ()
}

// -----

// expected-error @+1 {{operation 'torch.relu' belongs to unregistered dialect 'torch' (use --allow-unregistered-dialect)}}
%r = "torch.relu"() : () -> tensor<4xf32>

// -----

// expected-error @+1 {{integer constant 300 out of range for type i8}}
"builtin.module"() ({}) {bad = 300 : i8} : () -> ()

// -----

// expected-error @+1 {{floating point value not valid for type i32}}
"builtin.module"() ({}) {bad = 1.5 : i32} : () -> ()

// -----

// expected-error @+1 {{dense literal of shape 3 does not match type tensor<2xi32>}}
"builtin.module"() ({}) {bad = dense<[1, 2, 3]> : tensor<2xi32>} : () -> ()

// -----

func.func @undefined_block() {
  // expected-error @+1 {{reference to an undefined block '^nowhere'}}
  "func.return"()[^nowhere] : () -> ()
}

// -----

// expected-error @+1 {{undefined type alias '!missing'}}
func.func private @alias(!missing)

// -----

func.func @unterminated() {
  // expected-error @+1 {{unterminated string literal}}
  "func.return"() {s = "no end} : () -> ()
}

// -----

// expected-error @+1 {{unknown escape}}
"builtin.module"() ({}) {s = "bad \q escape"} : () -> ()

// -----

// expected-error @+3 {{duplicate key 'a' in dictionary attribute}}
"builtin.module"() ({
^bb0:
}) {a = 1, b, a = 2} : () -> ()

// -----

func.func @unbalanced() {
  "func.return"() : () -> ()
// expected-error @+1 {{unexpected end of input}}
