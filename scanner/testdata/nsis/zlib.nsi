SetCompressor  zlib
OutFile "zlib.exe"
InstallDir "$TEMP\t"
Section
SetOutPath "$INSTDIR"
File "clam.exe"
File "readme.txt"
SectionEnd
