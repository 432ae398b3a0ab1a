/* cortado test support: file-system clean-up shared by the tests that
 * make a scratch directory of their own. */
#ifndef CT_TEST_FS_UTIL_H
#define CT_TEST_FS_UTIL_H

/* Removes the plain files directly inside dir, then dir itself (not
 * recursive). A missing dir is not an error. */
void tu_rm_dir(const char *dir);

#endif /* CT_TEST_FS_UTIL_H */
