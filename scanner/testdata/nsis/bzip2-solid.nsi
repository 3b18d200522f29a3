SetCompressor /SOLID bzip2
OutFile "bzip2-solid.exe"
InstallDir "$TEMP\t"
Section
SetOutPath "$INSTDIR"
File "clam.exe"
File "readme.txt"
SectionEnd
