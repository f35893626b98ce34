// Every kind of attribute xDSL and we both read, in generic form.
"builtin.module"() ({
  "test.ints"() {untyped = 42, neg = -7, i8 = -128 : i8, i16 = 32767 : i16, big = 9223372036854775807, small = -9223372036854775808, si8 = -3 : si8, ui16 = 65535 : ui16, idx = 5 : index, i128 = 170141183460469231731687303715884105727 : i128, hex = 0x1F : i32} : () -> ()
  "test.bools"() {t = true, f = false, one = 1 : i1, zero = 0 : i1, present} : () -> ()
  "test.floats"() {a = 0.1 : f64, b = 1.0e-30 : f64, c = -0.0 : f32, d = 1.0e+300 : f64, e = 65504.0 : f16, f = 0.1 : bf16, g = 3.4028235e+38 : f32, h = 5.0e-324 : f64, untyped = 2.5, nan = 0x7FC00000 : f32, inf = 0x7FF0000000000000 : f64, neginf = 0xFC00 : f16} : () -> ()
  "test.strings"() {empty = "", quote = "a\"b", backslash = "a\\b", newline = "line1\nline2", tab = "a\tb", hex = "\00\7F", unicode = "€ and ü", emoji = "😀"} : () -> ()
  "test.containers"() {empty_array = [], array = [1, "two", 3.0 : f32, [4, [5]], {k = unit}], empty_dict = {}, dict = {a = 1, "quoted key" = "v", nested = {deeper = [true]}}} : () -> ()
  "test.types"() {i = i32, f = f16, t = tensor<2x?xf32>, u = tensor<*xi8>, v = vector<4xf32>, c = complex<f64>, fn = (i32, f32) -> (index, none), d = !test.t<"payload">} : () -> ()
  "test.symbols"() {flat = @main, nested = @outer::@inner, quoted = @"with space"::@"a::b"} : () -> ()
  "test.dense"() {splat = dense<1.5> : tensor<2x3xf32>, list = dense<[[1, 2], [3, 4]]> : tensor<2x2xi32>, bools = dense<[true, false, true]> : tensor<3xi1>, hex = dense<"0x0000803F00000040"> : tensor<2xf32>, vec = dense<[1.0, 2.0]> : vector<2xf64>, empty = dense<> : tensor<0x3xf32>, scalar = dense<7> : tensor<i64>, signed = dense<[-1, 127]> : tensor<2xsi8>, unsigned = dense<[0, 255]> : tensor<2xui8>} : () -> ()
  "test.arrays"() {i64 = array<i64: 1, -2, 3>, i1 = array<i1: true, false>, f32 = array<f32: 0.5, -1.25>, i8 = array<i8: -128, 127>, empty = array<i32>} : () -> ()
  "test.dialect"() {a = #test.attr, b = #test.attr<1, [2, 3]>, c = #test.nested<"a>b", <inner<x>>>} : () -> ()
  "test.props"() <{count = 3 : i32, name = "p", list = [1, 2]}> {discardable = unit} : () -> ()
}) : () -> ()
