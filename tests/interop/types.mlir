// Types: as block argument, operand and result types, and as attributes.
"builtin.module"() ({
  "test.region"() ({
  ^bb0(%i1: i1, %i7: i7, %si8: si8, %ui16: ui16, %i128: i128, %idx: index, %none: none, %f16: f16, %bf16: bf16, %f32: f32, %f64: f64, %f80: f80, %f128: f128):
    "test.use"(%i1, %i7, %si8, %ui16, %i128, %idx, %none, %f16, %bf16, %f32, %f64, %f80, %f128) : (i1, i7, si8, ui16, i128, index, none, f16, bf16, f32, f64, f80, f128) -> ()
  }) : () -> ()
  %0:6 = "test.shaped"() : () -> (tensor<1x3x224x224xf32>, tensor<?x?xi8>, tensor<*xf16>, tensor<f32>, tensor<0xindex>, vector<4x4xf32>)
  %1:3 = "test.composite"() : () -> (complex<f32>, complex<i16>, tensor<2xcomplex<f64>>)
  %2:4 = "test.dialect"() : () -> (!test.t, !test.t<"body with > inside">, !test.t<1x2, <nested>>, tensor<4x!test.elt>)
  %3 = "test.encoded"() : () -> tensor<4x4xf32, #test.encoding<"csr">>
  %4:2 = "test.functional"() : () -> ((i32) -> i32, (tensor<2xf32>, index) -> (f32, f32))
  "test.sink"(%0#0, %0#5, %1#2, %2#2, %3, %4#1) : (tensor<1x3x224x224xf32>, vector<4x4xf32>, tensor<2xcomplex<f64>>, !test.t<1x2, <nested>>, tensor<4x4xf32, #test.encoding<"csr">>, (tensor<2xf32>, index) -> (f32, f32)) -> ()
}) : () -> ()
