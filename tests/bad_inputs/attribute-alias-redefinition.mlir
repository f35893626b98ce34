// ERROR: redefinition of attribute alias '#a'
#a = 1
#a = 2
