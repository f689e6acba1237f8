# What `cmake --install` puts beside the two binaries (src/*/CMakeLists.txt
# install those): the config, the systemd unit with its user and state
# directory, the manuals, kvctl's bash completion and the docs. The Debian
# package (packaging/debian/rules) is built from exactly this set, so a
# non-Debian install gets the same files at the GNUInstallDirs paths.

# Units go to PREFIX/lib/systemd/system (systemd's own layout for /usr);
# Debian bookworm wants /lib/systemd/system and passes it.
set(RINGKV_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
  "Where ringkvd.service is installed (relative to the prefix, or absolute)")
set(RINGKV_SYSUSERSDIR "lib/sysusers.d" CACHE STRING "Where the ringkv user's sysusers.d file goes")
set(RINGKV_TMPFILESDIR "lib/tmpfiles.d" CACHE STRING "Where the state directory's tmpfiles.d file goes")

# systemd/ringkvd.service names /usr/bin/ringkvd and /etc/ringkv (the
# packaged layout); an install elsewhere gets a unit naming its own paths.
file(READ ${PROJECT_SOURCE_DIR}/systemd/ringkvd.service _rk_unit)
string(REPLACE "/usr/bin/ringkvd " "${CMAKE_INSTALL_FULL_BINDIR}/ringkvd " _rk_unit "${_rk_unit}")
string(REPLACE "/etc/ringkv/" "${CMAKE_INSTALL_FULL_SYSCONFDIR}/ringkv/" _rk_unit "${_rk_unit}")
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/packaging/ringkvd.service CONTENT "${_rk_unit}" @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/systemd/ringkvd.service)

install(FILES ${PROJECT_BINARY_DIR}/packaging/ringkvd.service DESTINATION ${RINGKV_SYSTEMD_UNITDIR})
install(FILES ${PROJECT_SOURCE_DIR}/packaging/sysusers.conf DESTINATION ${RINGKV_SYSUSERSDIR}
  RENAME ringkv.conf)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/tmpfiles.conf DESTINATION ${RINGKV_TMPFILESDIR}
  RENAME ringkv.conf)
install(FILES ${PROJECT_SOURCE_DIR}/etc/ringkv.toml DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/ringkv)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/kvctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/ringkv.toml.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/ringkvd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/kvctl.bash-completion
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME kvctl)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/CHANGELOG.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
