// RUN: xir-opt --allow-unregistered-dialect %s | filecheck %s
// RUN: xir-opt --allow-unregistered-dialect %s | xir-opt --allow-unregistered-dialect | filecheck %s

// Every builtin attribute kind, as it prints back.

// CHECK:      "test.integers"() {plain = 1, i8 = 7 : i8, si = -3 : si32, ui = 255 : ui8, hex = 16 : i32, idx = 42 : index, neg = -128 : i8, wide = 18446744073709551615 : ui64} : () -> ()
"test.integers"() {plain = 1, i8 = 7 : i8, si = -3 : si32, ui = 255 : ui8, hex = 0x10 : i32, idx = 42 : index, neg = -128 : i8, wide = 18446744073709551615 : ui64} : () -> ()

// CHECK-NEXT: "test.floats"() {f32 = 1.5 : f32, negzero = -0.0 : f64, tiny = 1.0e-30 : f64, nan = 0x7FC00000 : f32, half = 0.0999756 : f16, exp = 25000000000.0 : f64, bf = 1.0 : bf16} : () -> ()
"test.floats"() {f32 = 1.5 : f32, negzero = -0.0 : f64, tiny = 1.0e-30, nan = 0x7FC00000 : f32, half = 0.1 : f16, exp = 25000000000.0, bf = 1.0 : bf16} : () -> ()

// Strings keep printable ASCII and escape the rest as \XX.
// CHECK-NEXT: "test.strings"() {plain = "hello", escapes = "q\"b\\n\0At\09", utf8 = "\E2\82\AC", typed = "x" : i32, empty = ""} : () -> ()
"test.strings"() {plain = "hello", escapes = "q\"b\\n\nt\t", utf8 = "\E2\82\AC", typed = "x" : i32, empty = ""} : () -> ()

// A unit attribute prints as its bare name.
// CHECK-NEXT: "test.bools"() {t = true, f = false, u, v, b1 = true} : () -> ()
"test.bools"() {t = true, f = false, u, v = unit, b1 = 1 : i1} : () -> ()

// CHECK-NEXT: "test.containers"() {ints = [1, -2, 3], mixed = [1, "two", [3.0 : f16], []], dict = {x = 1, y = {z}}, empty = {}} : () -> ()
"test.containers"() {ints = [1, -2, 3], mixed = [1, "two", [3.0 : f16], []], dict = {x = 1, y = {z}}, empty = {}} : () -> ()

// CHECK-NEXT: "test.types"() {int = i32, tensor = tensor<2x3xf32>, unranked = tensor<*xf32>, dynamic = tensor<?x4xf32>, vector = vector<4xi8>, complex = complex<f32>, encoded = tensor<4xi8, #d.enc>, index = index, fn = (i32, f32) -> i1, fn2 = () -> (), dialect = !d.type<i32>} : () -> ()
"test.types"() {int = i32, tensor = tensor<2x3xf32>, unranked = tensor<*xf32>, dynamic = tensor<?x4xf32>, vector = vector<4xi8>, complex = complex<f32>, encoded = tensor<4xi8, #d.enc>, index = index, fn = (i32, f32) -> i1, fn2 = () -> (), dialect = !d.type<i32>} : () -> ()

// CHECK-NEXT: "test.symbols"() {flat = @sym, nested = @outer::@inner::@leaf, quoted = @"with space"::@x} : () -> ()
"test.symbols"() {flat = @sym, nested = @outer::@inner::@leaf, quoted = @"with space"::@x} : () -> ()

// Dense elements: splats stay splats, hex payloads print as values.
// CHECK-NEXT: "test.dense"() {splat = dense<1.0> : tensor<4xf32>, list = dense<[[1, 2], [3, 4]]> : tensor<2x2xi32>, hex = dense<[1.0, 2.0]> : tensor<2xf32>, bools = dense<[true, false]> : tensor<2xi1>, vec = dense<7> : vector<3xi8>, empty = dense<> : tensor<0xf32>} : () -> ()
"test.dense"() {splat = dense<1.0> : tensor<4xf32>, list = dense<[[1, 2], [3, 4]]> : tensor<2x2xi32>, hex = dense<"0x0000803F00000040"> : tensor<2xf32>, bools = dense<[true, false]> : tensor<2xi1>, vec = dense<7> : vector<3xi8>, empty = dense<> : tensor<0xf32>} : () -> ()

// CHECK-NEXT: "test.arrays"() {i64s = array<i64: 1, 2, 3>, f32s = array<f32: 1.5, -2.0>, bools = array<i1: true, false>, none = array<i32>} : () -> ()
"test.arrays"() {i64s = array<i64: 1, 2, 3>, f32s = array<f32: 1.5, -2.0>, bools = array<i1: true, false>, none = array<i32>} : () -> ()

// Dialect attributes keep their body text, nested brackets and strings included.
// CHECK-NEXT: "test.dialect"() {a = #d.attr<"x" <1>>, b = #d.plain, c = #d.nested<<a<b>>, "->">, d = !d.t<"a>b">} : () -> ()
"test.dialect"() {a = #d.attr<"x" <1>>, b = #d.plain, c = #d.nested<<a<b>>, "->">, d = !d.t<"a>b">} : () -> ()

// Quoted attribute names.
// CHECK-NEXT: "test.names"() {"with space" = 1, "0digit" = 2, dotted.name = 3} : () -> ()
"test.names"() {"with space" = 1, "0digit" = 2, dotted.name = 3} : () -> ()
