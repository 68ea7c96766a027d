// Helpers for fault tests: a real SQLite read error on demand (a table renamed away by a second
// connection, then back), the log lines natpilotd wrote, and waiting for a condition with a bound.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace natpilot::testing {

// Polls until pred() holds or the bound passes; returns the last pred().
inline bool WaitUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds bound = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Renames a table of the database file away (every statement of the store that uses it then fails
// with "no such table", a genuine SqliteError) until Restore() or destruction.
class TableAway {
 public:
  TableAway(const std::string& db_path, std::string table) : table_(std::move(table)) {
    EXPECT_EQ(sqlite3_open(db_path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
    Exec("ALTER TABLE " + table_ + " RENAME TO " + table_ + "_away");
  }
  ~TableAway() {
    Restore();
    sqlite3_close(db_);
  }
  TableAway(const TableAway&) = delete;
  TableAway& operator=(const TableAway&) = delete;
  void Restore() {
    if (restored_) return;
    restored_ = true;
    Exec("ALTER TABLE " + table_ + "_away RENAME TO " + table_);
  }

 private:
  void Exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err ? err : "") << " in " << sql;
    sqlite3_free(err);
  }
  std::string table_;
  sqlite3* db_ = nullptr;
  bool restored_ = false;
};

// Makes spdlog's default logger record its messages for the lifetime of the object. Install it
// before starting the threads under test and let it go after stopping them.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<Sink>()), previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  bool Contains(const std::string& text) const { return sink_->Contains(text); }
  std::string All() const { return sink_->All(); }

 private:
  class Sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    bool Contains(const std::string& text) {
      std::lock_guard lock(mutex_);
      for (const std::string& l : lines_) {
        if (l.find(text) != std::string::npos) return true;
      }
      return false;
    }
    std::string All() {
      std::lock_guard lock(mutex_);
      std::string out;
      for (const std::string& l : lines_) out += l + "\n";
      return out;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      lines_.emplace_back(msg.payload.data(), msg.payload.size());
    }
    void flush_() override {}

   private:
    std::vector<std::string> lines_;
  };

  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace natpilot::testing
