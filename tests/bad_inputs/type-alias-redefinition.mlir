// ERROR: redefinition of type alias '!t'
!t = i32
!t = f32
