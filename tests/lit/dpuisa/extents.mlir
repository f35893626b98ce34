// RUN: xir-opt --split-input-file --verify-diagnostics %s

// With a target, the program's verifier places each compute instruction's whole accesses
// (input rows, weights, bias, output pixels) with the last INIT of its engine before it, as
// the simulator's engines do, and reports the simulator's fault (docs/dpuisa.md, "Which
// target").

// Row 2 of the input (jump_read = 2047 words below row 0) passes VB0's 2048 words.
"dpuisa.program"() ({
  "dpuisa.convinit"() {dpdon = 0, dpdby = 0, shift_cut = 0, shift_bias = 0, act_type = 0, kernel_h = 3, kernel_w = 3, stride_h = 1, stride_w = 1, jump_read = 2047, jump_write = 1, shift_hsigmoid = 0, shift_hswish = 0} : () -> ()
  // expected-error @+1 {{'dpuisa.conv' op instruction 1 (CONV at word 4): field 'bank_addr_in' = 0 input row 2 (jump_read = 2047): 4 pixel(s) of 1 word(s), 1 word(s) apart in a bank, reach word 4094, which exceeds bank group VB0's depth 2048 (words 0-2047)}}
  "dpuisa.conv"() {dpdon = 0, dpdby = 0, pad_left = 1, pad_top = 0, pad_right = 1, pad_bottom = 0, bank_id_in = 0, bank_addr_in = 0, bank_id_out = 8, bank_addr_out = 0, length = 4, bank_id_weights = 16, bank_addr_weights = 0, channel_group = 1, bank_id_bias = 33, bank_addr_bias = 0} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) {target = "DPUCZDX8G_ISA1_B4096"} : () -> ()

// -----

// 12 output pixels of 2 words (32 channels) from slot 0 of VB1's 8 banks, 1 word apart in a
// bank: the second turn overlaps the first.
"dpuisa.program"() ({
  "dpuisa.elewinit"() {dpdon = 0, dpdby = 0, elew_type = 0, act_type = 0, shift_write = 0, shift_read_0 = 0, shift_read_1 = 0, jump_read_0 = 2, jump_read_1 = 2, jump_write = 1} : () -> ()
  // expected-error @+1 {{'dpuisa.elew' op instruction 1 (ELEW at word 3): field 'bank_addr_out' = 0 output (jump_write = 1): pixels 1 word(s) apart in a bank overlap (a pixel takes 2 word(s) of bank group VB1)}}
  "dpuisa.elew"() {dpdon = 0, dpdby = 0, bank_id_out = 8, bank_addr_out = 0, bank_id_in_0 = 0, bank_addr_in_0 = 0, length = 12, bank_id_in_1 = 0, bank_addr_in_1 = 100, channel_group = 2} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) {target = "DPUCZDX8G_ISA1_B4096"} : () -> ()

// -----

// The pads leave no window: 3 kernel rows, 2 above and 2 below the map.
"dpuisa.program"() ({
  "dpuisa.poolinit"() {dpdon = 0, dpdby = 0, pool_type = 0, kernel_h = 3, kernel_w = 3, stride_h = 1, stride_w = 1, jump_read = 1, jump_write = 1, shift_cut = 0} : () -> ()
  // expected-error @+1 {{'dpuisa.pool' op instruction 1 (POOL at word 2): field 'pad_top' = 2 with pad_bottom = 2 leaves -1 of the kernel_h = 3 rows}}
  "dpuisa.pool"() {dpdon = 0, dpdby = 0, pad_left = 0, pad_top = 2, pad_right = 0, pad_bottom = 2, bank_id_in = 0, bank_addr_in = 0, bank_id_out = 8, bank_addr_out = 0, length = 1, channel_group = 1} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) {target = "DPUCZDX8G_ISA0_B4096"} : () -> ()
