// Runner for the native tests (see harness.h).
#include <cstring>
#include <iostream>

#include "harness.h"

namespace kt {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> r;
  return r;
}

namespace {
int g_failures = 0;
int g_reported = 0;
constexpr int kMaxReportsPerTest = 20;
}  // namespace

int64_t& checks_run() {
  static int64_t n = 0;
  return n;
}

void record_failure(const char* file, int line, const std::string& message) {
  ++g_failures;
  if (++g_reported <= kMaxReportsPerTest) std::cerr << "    FAIL " << file << ":" << line << ": " << message << "\n";
}

int failures_in_test() { return g_failures; }

}  // namespace kt

int main(int argc, char** argv) {
  const char* suite = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0, skipped = 0;
  for (const kt::TestCase& t : kt::registry()) {
    if (suite != nullptr && std::strcmp(suite, t.suite) != 0) continue;
    kt::g_failures = 0;
    kt::g_reported = 0;
    const int64_t checks_before = kt::checks_run();
    std::cout << "[ RUN  ] " << t.suite << "." << t.name << std::endl;
    try {
      t.fn();
    } catch (const kt::Skip& s) {
      std::cout << "[ SKIP ] " << t.suite << "." << t.name << ": " << s.reason << std::endl;
      ++skipped;
      continue;
    }
    const int64_t checks = kt::checks_run() - checks_before;
    if (kt::g_failures > 0) {
      std::cout << "[ FAIL ] " << t.suite << "." << t.name << " (" << kt::g_failures << " of " << checks
                << " checks failed)" << std::endl;
      ++failed;
    } else if (checks == 0) {
      std::cout << "[ FAIL ] " << t.suite << "." << t.name << " (made no checks)" << std::endl;
      ++failed;
    } else {
      std::cout << "[  OK  ] " << t.suite << "." << t.name << " (" << checks << " checks)" << std::endl;
      ++passed;
    }
  }
  std::cout << (suite ? suite : "all") << ": " << passed << " passed, " << failed << " failed, " << skipped
            << " skipped" << std::endl;
  if (failed > 0) return 1;
  if (passed == 0) return skipped > 0 ? 77 : 1;
  return 0;
}
