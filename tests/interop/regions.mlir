// Nested regions, blocks with arguments, successors, multi-result ops and forward references
// (in graph regions, the regions of unregistered ops).
"builtin.module"() ({
  %a, %b:2 = "test.source"() : () -> (i32, f32, index)
  "test.loop"(%a) ({
  ^entry(%iv: i32):
    %s = "test.step"(%iv, %a, %b#1) : (i32, i32, index) -> i32
    "test.cond_br"(%s)[^body, ^exit] : (i32) -> ()
  ^body:
    "test.inner"() ({
      "test.use"(%s, %b#0, %iv) : (i32, f32, i32) -> ()
    }, {
    ^bb0:
    }) : () -> ()
    "test.br"()[^entry] : () -> ()
  ^exit:
    "test.yield"(%s) : (i32) -> ()
  }) : (i32) -> ()
  "test.graph"() ({
    "test.consume"(%late, %pair#1) : (i64, i8) -> ()
    %late = "test.produce"() : () -> i64
    %pair:2 = "test.produce2"() : () -> (i16, i8)
  }) : () -> ()
  "test.empty_regions"() ({
  }, {
  ^bb0:
  }) : () -> ()
}) : () -> ()
