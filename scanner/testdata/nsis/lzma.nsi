SetCompressor  lzma
OutFile "lzma.exe"
InstallDir "$TEMP\t"
Section
SetOutPath "$INSTDIR"
File "clam.exe"
File "readme.txt"
SectionEnd
