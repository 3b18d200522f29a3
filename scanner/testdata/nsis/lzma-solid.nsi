SetCompressor /SOLID lzma
OutFile "lzma-solid.exe"
InstallDir "$TEMP\t"
Section
SetOutPath "$INSTDIR"
File "clam.exe"
File "readme.txt"
SectionEnd
