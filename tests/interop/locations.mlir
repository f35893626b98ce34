// Locations of every kind (xDSL reads them with --print-debuginfo).
"builtin.module"() ({
  "test.a"() : () -> () loc(unknown)
  "test.b"() : () -> () loc("model.onnx":12:5)
  "test.c"() : () -> () loc("conv1")
  "test.d"() : () -> () loc("conv1"("model.onnx":3:1))
  "test.e"() : () -> () loc(fused["conv1", "bn1", "model.onnx":4:2])
  "test.f"() : () -> () loc(callsite("callee.py":1:2 at "caller.py":3:4))
  "test.g"() : () -> () loc(callsite("inner" at callsite("middle" at "outer")))
  "test.h"() : () -> () loc("quoted \"name\" with \\ backslash")
  "test.i"() {where = loc("as an attribute")} : () -> () loc(fused[])
  "test.j"() ({
  ^bb0(%arg: i32):
    "test.k"(%arg) : (i32) -> () loc("nested":7:9)
  }) : () -> () loc("region owner")
}) : () -> () loc("module")
