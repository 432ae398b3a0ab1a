# storage/: liblmdb for the "lmdb" DB type (Debian: liblmdb-dev).
# Included by the top-level CMakeLists.txt after the ct_objs library and
# CT_LINK_LIBS are defined. Without liblmdb the library still builds;
# the "lmdb" type is then simply not registered.
option(CT_WITH_LMDB "Register the lmdb DB type (needs liblmdb-dev)" ON)
if(CT_WITH_LMDB)
  pkg_check_modules(LMDB QUIET IMPORTED_TARGET lmdb)
  if(LMDB_FOUND)
    set(CT_LMDB_LIB PkgConfig::LMDB)
  else()
    find_path(CT_LMDB_INCLUDE lmdb.h)
    find_library(CT_LMDB_LIBRARY lmdb)
    if(CT_LMDB_INCLUDE AND CT_LMDB_LIBRARY)
      add_library(ct_lmdb INTERFACE)
      target_include_directories(ct_lmdb INTERFACE ${CT_LMDB_INCLUDE})
      target_link_libraries(ct_lmdb INTERFACE ${CT_LMDB_LIBRARY})
      set(CT_LMDB_LIB ct_lmdb)
    endif()
  endif()
  if(CT_LMDB_LIB)
    target_compile_definitions(ct_objs PRIVATE CT_HAVE_LMDB)
    target_link_libraries(ct_objs PUBLIC ${CT_LMDB_LIB})
    list(APPEND CT_LINK_LIBS ${CT_LMDB_LIB})
    message(STATUS "storage: lmdb DB type enabled")
  else()
    message(WARNING "liblmdb not found (apt-get install liblmdb-dev): "
                    "building without the lmdb DB type")
  endif()
endif()
