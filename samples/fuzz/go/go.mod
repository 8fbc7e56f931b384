module sbxfuzzgo

go 1.19
