#!/usr/bin/env python3
# Writes the eh-frame-*.elf fixtures: python3 make-eh-frame-elfs.py MODE OUT (good, short, longaug).
import struct,sys
# An ET_EXEC with one PT_LOAD (RX) holding: code at 0x400000+0x1000: b8 07 00 00 00 0f a2 c3,
# and an .eh_frame section. Variants: good (one FDE covering the code), short (a last FDE of
# length 1), longaug (a CIE with a long augmentation and many FDEs pointing at it).
mode=sys.argv[1]; out=sys.argv[2]
base=0x400000
code_off=0x200
code=bytes([0xb8,7,0,0,0,0x0f,0xa2,0xc3])
eh_off=0x300
eh_addr=base+eh_off
def cie(aug=b'zR', R=0x1b):
    body = struct.pack('<I',0) + bytes([1]) + aug + b'\0' + bytes([1,0x78,16,1,R])
    while (len(body)+4)%4: body+=b'\0'
    return struct.pack('<I',len(body))+body
eh=bytearray()
if mode in ('good','short'):
    eh+=cie()
    # FDE: pc_begin pcrel sdata4, range sdata4
    off=len(eh)
    field_addr = eh_addr+off+8
    pc = base+code_off
    body = struct.pack('<I', off+4) + struct.pack('<i', pc-field_addr) + struct.pack('<i', len(code)) + b'\0'
    while (len(body)+4)%4: body+=b'\0'
    eh+=struct.pack('<I',len(body))+body
    if mode=='short':
        off=len(eh)
        eh+=struct.pack('<I',1)+struct.pack('<I',off+4)
else:
    body = struct.pack('<I',0) + bytes([1]) + b'z' + b'R'*4000
    eh+=struct.pack('<I',len(body))+body
    for i in range(1500):
        off=len(eh)
        eh+=struct.pack('<I',8)+struct.pack('<I',off+4)+struct.pack('<i',0)
eh=bytes(eh)
shstr=b'\0.eh_frame\0.shstrtab\0.text\0'
shstr_off=eh_off+len(eh)
shoff=(shstr_off+len(shstr)+7)&~7
nsh=4
total=shoff+nsh*64
ehdr=b'\x7fELF'+bytes([2,1,1,0])+b'\0'*8
ehdr+=struct.pack('<HHIQQQIHHHHHH',2,62,1,base+code_off,64,shoff,0,64,56,1,64,nsh,2)
ph=struct.pack('<IIQQQQQQ',1,5,0,base,base,total,total,0x1000)
def sh(name,typ,flags,addr,off,size,link=0,info=0,align=1,ent=0):
    return struct.pack('<IIQQQQIIQQ',name,typ,flags,addr,off,size,link,info,align,ent)
shdrs=sh(0,0,0,0,0,0)+sh(1,1,2,eh_addr,eh_off,len(eh))+sh(11,3,0,0,shstr_off,len(shstr))+sh(21,1,6,base+code_off,code_off,len(code))
img=bytearray(total)
img[0:len(ehdr)]=ehdr
img[64:64+len(ph)]=ph
img[code_off:code_off+len(code)]=code
img[eh_off:eh_off+len(eh)]=eh
img[shstr_off:shstr_off+len(shstr)]=shstr
img[shoff:shoff+len(shdrs)]=shdrs
open(out,'wb').write(bytes(img))
