// RUN: xir-opt %s | filecheck %s
// RUN: xir-opt %s | xir-opt | filecheck %s

// A DPU instruction stream as text: load a row into VB0, convolve it into VB1, save it. The
// dependency tokens pair up: LOAD signals CONV (dpdby bit 2), CONV waits on LOAD (dpdon bit 0),
// CONV signals SAVE (bit 1), SAVE waits on CONV (bit 2). Printing and reading back keep every field.

// CHECK:      "dpuisa.program"() ({
// CHECK-NEXT:   "dpuisa.load"() {dpdon = 0, dpdby = 4, bank_id = 0, bank_addr = 0, length = 4, channel = 16, pad_start = 0, jump_read = 16, pad_end = 0, reg_id = 1, jump_write = 1, ddr_addr = 4096} : () -> ()
// CHECK-NEXT:   "dpuisa.convinit"() {dpdon = 0, dpdby = 0, shift_cut = 7, shift_bias = -2, act_type = 1, kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, jump_read = 4, jump_write = 4, shift_hsigmoid = 0, shift_hswish = 0} : () -> ()
// CHECK-NEXT:   "dpuisa.conv"() {dpdon = 1, dpdby = 2, {{.*}}bank_id_weights = 16, {{.*}}bank_id_bias = 33, bank_addr_bias = 0} : () -> ()
// CHECK-NEXT:   "dpuisa.save"() {dpdon = 4, dpdby = 0, {{.*}}} : () -> ()
// CHECK-NEXT:   "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
// CHECK-NEXT: }) {target = "DPUCZDX8G_ISA1_B4096"} : () -> ()
"dpuisa.program"() ({
  "dpuisa.load"() {dpdon = 0, dpdby = 4, bank_id = 0, bank_addr = 0, length = 4, channel = 16, pad_start = 0, jump_read = 16, pad_end = 0, reg_id = 1, jump_write = 1, ddr_addr = 4096} : () -> ()
  "dpuisa.convinit"() {dpdon = 0, dpdby = 0, shift_cut = 7, shift_bias = -2, act_type = 1, kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, jump_read = 4, jump_write = 4, shift_hsigmoid = 0, shift_hswish = 0} : () -> ()
  "dpuisa.conv"() {dpdon = 1, dpdby = 2, pad_left = 0, pad_top = 0, pad_right = 0, pad_bottom = 0, bank_id_in = 0, bank_addr_in = 0, bank_id_out = 8, bank_addr_out = 0, length = 4, bank_id_weights = 16, bank_addr_weights = 0, channel_group = 1, bank_id_bias = 33, bank_addr_bias = 0} : () -> ()
  "dpuisa.save"() {dpdon = 4, dpdby = 0, bank_id = 8, bank_addr = 0, length = 4, channel = 16, jump_read = 1, jump_write = 16, reg_id = 2, ddr_addr = 0} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) {target = "DPUCZDX8G_ISA1_B4096"} : () -> ()
