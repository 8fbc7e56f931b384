module sbx.example/gowork

go 1.19
